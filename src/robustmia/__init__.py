"""robustmia: how much does a robust model leak about its training data?"""

__version__ = "0.1.0"
