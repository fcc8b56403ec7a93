"""`attack=confidence_gap`: how much more confident the released model is on its training nodes than on test nodes."""

from __future__ import annotations

from typing import Any

from gnnrisk.attack.context import AttackContext


def run(ctx: AttackContext) -> dict[str, Any]:
    """Mean top-class probability on training nodes minus that on test nodes (a membership signal)."""
    prob = ctx.trained.predict_proba().cpu()
    confidence = prob.max(dim=1).values
    train, test = ctx.data.train_mask.cpu(), ctx.data.test_mask.cpu()
    return {"attack_confidence_gap": float(confidence[train].mean() - confidence[test].mean())}
