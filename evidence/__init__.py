"""Evidence packages: signed BagIt bags with a composite image, custody log, verify and replay."""

from .bag import BlobSource, build_package, case_id, unfinished
from .composite import render_composite
from .custody import CustodyEvent, verify_chain
from .custody import append as append_custody
from .errors import EvidenceError
from .replay import ReplayResult, replay_package
from .signing import Keyring, Signer, generate_key, key_id, load_keyring, load_public_key
from .stage import EvidenceStage
from .verify import verify_package

__all__ = [
    "BlobSource",
    "CustodyEvent",
    "EvidenceError",
    "EvidenceStage",
    "Keyring",
    "ReplayResult",
    "Signer",
    "append_custody",
    "build_package",
    "case_id",
    "generate_key",
    "key_id",
    "load_keyring",
    "load_public_key",
    "render_composite",
    "replay_package",
    "unfinished",
    "verify_chain",
    "verify_package",
]
