"""GLUE examples from a TSV folder or tfds, all shaped as tfds gives them."""
