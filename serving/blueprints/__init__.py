"""The service's routes, one blueprint per concern: predictions, TF Serving's REST API, scoring and jobs,
operations (health, metrics, OpenAPI, the page)."""

from serving.blueprints.operations import operations
from serving.blueprints.prediction import prediction
from serving.blueprints.scoring import scoring
from serving.blueprints.tf_serving import tf_serving

ALL = (prediction, tf_serving, scoring, operations)
