"""DP-MLP: DP-SGD (Opacus) on an MLP over node features only, the baseline node-private graph methods must beat.

The MLP never sees an edge, so removing a node removes exactly one training example: example-level
DP-SGD (Abadi et al. 2016) with Poisson sampling is node-level DP here. Noise is calibrated with the
Opacus RDP analysis (`accounting.rdp_subsampled_gaussian` over the cheap integer orders, which can
only overstate epsilon) and the reported epsilon is what Opacus's RDP accountant says was spent,
over all of `accounting.ORDERS`.
"""

from __future__ import annotations

import time
import warnings

import torch
from omegaconf import DictConfig
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset
from torch_geometric.data import Data

from gnnrisk.errors import ConfigError, check_number
from gnnrisk.models import build_model
from gnnrisk.privacy import accounting
from gnnrisk.privacy.base import Mechanism, TrainedModel
from gnnrisk.privacy.dpsgd_node import check_privacy_target, epoch_record, resolve_privacy_target
from gnnrisk.train.loop import FitResult


class DpMlp(Mechanism):
    """DP-SGD on a feature-only MLP with Opacus; privacy unit: node (= one example)."""

    name = "dp_mlp"
    privacy_unit = "node"

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self._settings()
        check_privacy_target(cfg)

    def _settings(self) -> tuple[int, int, float, float]:
        """Batch size, epochs, clipping bound and learning rate from the `privacy` group, validated."""
        c = self.cfg
        return (check_number("privacy.batch_size", c.get("batch_size"), low=1, integer=True),
                check_number("privacy.epochs", c.get("epochs"), low=1, integer=True),
                check_number("privacy.max_grad_norm", c.get("max_grad_norm"), low=0.0, low_open=True),
                check_number("privacy.lr", c.get("lr"), low=0.0, low_open=True))

    def check_model(self, model_cfg: DictConfig) -> None:
        """An MLP without normalisation layers: the model Opacus clips per example."""
        if model_cfg.name != "mlp":
            raise ConfigError("model.name", model_cfg.name, "privacy=dp_mlp trains an MLP over features only: "
                              "use model=mlp")
        if model_cfg.get("norm") is not None:
            raise ConfigError("model.norm", model_cfg.norm, "privacy=dp_mlp needs null (batch statistics mix "
                              "examples, so per-example gradients would not be per example)")

    def train(self, data: Data, model_cfg: DictConfig, train_cfg: DictConfig, seed: int) -> TrainedModel:
        """Calibrate the noise to the target epsilon, train with Opacus, report the spent epsilon."""
        self.check_model(model_cfg)
        c = self.cfg
        batch_size, epochs, max_grad_norm, lr = self._settings()
        train_mask = data.train_mask
        n = int(train_mask.sum())
        epsilon, delta = resolve_privacy_target(c, 1.0 / (10 * n), "1/(10 N_train)")
        if batch_size > n:
            raise ConfigError("privacy.batch_size", batch_size, f"expected at most the {n} training nodes")

        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(int(seed))
        loader = DataLoader(TensorDataset(data.x[train_mask], data.y[train_mask]), batch_size=batch_size,
                            shuffle=True, generator=gen)
        sample_rate, steps = 1.0 / len(loader), epochs * len(loader)  # what Opacus's Poisson loader uses

        def spent(sigma: float) -> float:
            return accounting.epsilon_from_rdp(
                accounting.rdp_subsampled_gaussian(sigma, sample_rate, steps, accounting.INTEGER_ORDERS),
                delta, accounting.INTEGER_ORDERS)

        sigma, _ = accounting.calibrate_noise(epsilon, delta, spent,
                                              context=f"with privacy.epochs={epochs} ({steps} steps)")
        model = build_model(model_cfg, data.num_features, int(data.y.max()) + 1).to(data.x.device)
        with warnings.catch_warnings():  # seeded (non-cryptographic) noise is deliberate: runs must reproduce
            warnings.filterwarnings("ignore", message="Secure RNG turned off")
            engine = PrivacyEngine(accountant="rdp")
        private, optimizer, private_loader = engine.make_private(
            module=model, optimizer=torch.optim.Adam(model.parameters(), lr=lr), data_loader=loader,
            noise_multiplier=sigma, max_grad_norm=max_grad_norm, poisson_sampling=True,
            noise_generator=torch.Generator(device=data.x.device).manual_seed(int(seed) + 1))
        criterion = torch.nn.CrossEntropyLoss()
        history, start = [], time.perf_counter()
        for epoch in range(1, epochs + 1):
            private.train()
            total, count = 0.0, 0
            for x, y in private_loader:
                optimizer.zero_grad()
                loss = criterion(private(x), y)
                loss.backward()
                optimizer.step()
                total, count = total + loss.item() * len(y), count + len(y)
            history.append(epoch_record(model, data, epoch, total / max(count, 1)))
        seconds = time.perf_counter() - start
        released = private.to_standard_module()
        eps_spent = float(engine.accountant.get_epsilon(delta, alphas=list(accounting.ORDERS)))
        fit = FitResult(epochs=epochs, best_epoch=epochs, train_seconds=seconds, history=history)
        return TrainedModel(model=released, graph=data, fit=fit, privacy={
            "mechanism": self.name, "privacy_unit": self.privacy_unit, "epsilon": eps_spent,
            "target_epsilon": epsilon, "delta": delta, "noise_multiplier": sigma,
            "max_grad_norm": max_grad_norm, "sample_rate": sample_rate, "batch_size": batch_size,
            "steps": sum(s for _, _, s in engine.accountant.history), "accountant": "rdp (opacus)"})
