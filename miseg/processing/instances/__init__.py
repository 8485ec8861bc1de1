"""Instance segmentation: from semantic label or probability maps to one id per object.

* :func:`connected_components`: components per class (cc3d; 4/8 or 6/18/26 connectivity),
  spacing-aware minimum size in mm^3.
* :func:`split_touching`: split touching objects by a watershed on the distance map or on
  the class probability, seeds at least ``seed_distance`` mm apart.
* :func:`instance_table`: per-instance id, class, voxel count, volume, centroid in patient
  coordinates, bounding box, mean intensity and mean probability.
* :class:`InstanceSegmenter`: the three steps with one set of settings, as used by
  ``Neural_Network.predict(..., instances=True)`` and ``miseg predict --instances``.
* :func:`save_instances`: write an instance map and its table through a data interface
  (``<case>.instances.nii.gz`` / ``.png`` / ``.tif`` / ``.seg.dcm`` + ``<case>.instances.tsv``).
"""

from miseg.processing.instances.core import (
    Instances,
    check_label_map,
    check_probabilities,
    connected_components,
)
from miseg.processing.instances.segmenter import (
    InstanceSegmenter,
    check_instance_capacity,
    check_instance_output,
    instance_capacity,
    instance_label_dtype,
    predicted_instances,
    resolve_segmenter,
    save_instances,
    write_instance_table,
)
from miseg.processing.instances.split import SPLIT_METHODS, seed_footprint, split_touching
from miseg.processing.instances.table import INSTANCE_TABLE_SUFFIX, instance_table

__all__ = [
    "Instances",
    "connected_components",
    "split_touching",
    "seed_footprint",
    "SPLIT_METHODS",
    "instance_table",
    "InstanceSegmenter",
    "save_instances",
    "predicted_instances",
    "resolve_segmenter",
    "write_instance_table",
    "instance_capacity",
    "check_instance_capacity",
    "check_instance_output",
    "instance_label_dtype",
    "check_label_map",
    "check_probabilities",
    "INSTANCE_TABLE_SUFFIX",
]
