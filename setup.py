"""Installation of miseg."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="miseg",
    version="0.1.0",
    description="MIScnn-compatible framework for 2D/3D medical image segmentation on TensorFlow/Keras 3",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="GPL-3.0-or-later",
    python_requires=">=3.10",
    packages=find_packages(include=["miseg", "miseg.*"]),
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "numpy>=1.26",
        "nibabel>=5.0",
        "pydicom>=3.0",
        "highdicom>=0.22",
        "batchgenerators>=0.25",
        "pandas>=2.0",
        "scipy>=1.10",
        "scikit-image>=0.22",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "pillow>=10.0",
        "pyyaml>=6.0",
        "SimpleITK>=2.2",
        "PyMaxflow>=1.3",
        "connected-components-3d>=3.12",
    ],
    extras_require={
        "test": [
            "pytest>=7.4",
            "ruff>=0.6",
            "nilearn==0.14.1",
            "dask[distributed]>=2024.1",
            "nbformat>=5.9",
            "nbclient>=0.9",
            "ipykernel>=6.0",
            "playwright>=1.40",  # drives Debian's chromium in the report's browser test (no download)
            "tf2onnx>=1.17",
            "onnx>=1.16",
            "onnxruntime>=1.18",
        ],
        "dask": ["dask[distributed]>=2024.1"],
        "export": ["tf2onnx>=1.17", "onnx>=1.16", "onnxruntime>=1.18"],
    },
    entry_points={"console_scripts": ["miseg=miseg.cli.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
