"""The glue-tf REST service (Flask under gunicorn); needs TensorFlow and tensorflow-text only."""
