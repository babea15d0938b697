"""worker: Celery app, thin tasks, and the TensorFlow training and evaluation core."""
