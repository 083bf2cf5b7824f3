"""Model-backed image ops: diffusion with augmented conditioning, mask-conditioned diffusion,
a day-to-night generator, and the model-free `night` op.

Models load from local directories only, lazily, once per worker; outputs are cached (see
`augflow.generative.cache`). Importing this package does not import diffusers or torch models.
"""

from augflow.generative.cache import set_cache_dir, use_cache_dir
from augflow.generative.conditioning import SameClassIndex, attach_partners
from augflow.generative.models import CALLS, ModelError

__all__ = ["SameClassIndex", "attach_partners", "set_cache_dir", "use_cache_dir", "CALLS", "ModelError"]
