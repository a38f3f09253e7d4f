"""Training losses: LPIPS (standard and shift-tolerant), ArcFace identity."""

from .id_loss import ArcFaceIRSE, IDLoss, IDLossError
from .lpips import LPIPS, LPIPSError

__all__ = ["ArcFaceIRSE", "IDLoss", "IDLossError", "LPIPS", "LPIPSError"]
