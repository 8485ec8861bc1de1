"""Cases in, predictions out: Data_IO, Sample and the format interfaces."""
