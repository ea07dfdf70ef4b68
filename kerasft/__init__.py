"""kerasft: fine-tune Hugging Face transformer text classifiers with TensorFlow/Keras.

Importing this package is cheap: TensorFlow is imported by the stages that need it.
"""

import os

# transformers' TF classes need Keras 2 (tf-keras); this must be set before TensorFlow is imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
