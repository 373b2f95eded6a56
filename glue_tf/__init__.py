"""glue-tf: fine-tune KerasHub BERT backbones on GLUE, export text-in SavedModels, serve them."""

__version__ = "0.1.0"
