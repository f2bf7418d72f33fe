"""Geography: bounding boxes and the job projection."""
