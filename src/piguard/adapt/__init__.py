"""Adapting the name/address model to a user's own labelled text (``piguard model train``).

Training lives here, apart from :mod:`piguard.detect`: a scan only loads a trained model
(:mod:`piguard.detect.adapted`) and never imports this package or its optional dependency, PyTorch."""
