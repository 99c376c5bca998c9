"""SAO + Music ControlFormer + Stylization at tiny size (random weights): the hooks change
nothing until trained, change the output once trained, train only themselves, and every
weight file loads strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bridge.errors import WeightsError
from engine import weights
from engine.generate.full import sampling
from engine.generate.full.ecmg import ECMG
from engine.generate.full.sao import SAO, load_sao, save_sao


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    weights.write_tiny(out, ["sao-1.0", "t5-base", "vmb-ecmg"], seed=0)
    return out


@pytest.fixture(scope="module")
def sao(model_dir: Path) -> SAO:
    return load_sao(model_dir / "sao-1.0", model_dir / "t5-base")


def _inputs(ecmg: ECMG, batch: int = 2) -> tuple:
    g = torch.Generator().manual_seed(0)
    c = ecmg.sao.latent_channels
    x = torch.randn(batch, c, 40, generator=g)
    t = torch.rand(batch, generator=g)
    cond = ecmg.conditioning(["a calm piano piece. tempo: slow", "fast drums"][:batch], 0.0, 1.5)
    control = torch.randn(batch, c, 40, generator=g)
    style = torch.randn(batch, ecmg.stylization.config.clap_dim, generator=g)
    return x, t, cond, control, style


def _base(sao: SAO, x: torch.Tensor, t: torch.Tensor, cond: dict, cfg: float) -> torch.Tensor:
    return sao.model.model(x, t, **cond, cfg_scale=cfg, batch_cfg=True)


def test_zero_initialised_adapters_are_bit_identical_to_the_base(sao: SAO) -> None:
    ecmg = ECMG.fresh(sao, control_depth=2)
    try:
        x, t, cond, control, style = _inputs(ecmg)
        with torch.no_grad():
            hooked = {cfg: ecmg.v_prediction(x, t, cond, control, style, cfg) for cfg in (1.0, 7.0)}
            sigmas = sampling.sigma_schedule(4, 0.03, 1000)

            def run(v_model):  # noqa: ANN001, ANN202
                noise = sampling.SeededNoise([3, 4], x.shape[1:], "cpu")
                return sampling.sample(
                    sampling.v_denoiser(v_model), noise() * sigmas[0], sigmas, noise
                )

            hooked_latents = run(
                lambda xi, ti: ecmg.v_prediction(xi, ti, cond, control, style, 7.0)
            )
        ecmg.close()
        with torch.no_grad():
            for cfg, out in hooked.items():
                assert torch.equal(out, _base(sao, x, t, cond, cfg))
            base_latents = run(lambda xi, ti: _base(sao, xi, ti, cond, 7.0))
        assert torch.equal(hooked_latents, base_latents)
    finally:
        ecmg.close()


def test_trained_adapters_change_the_output_each_on_its_own(sao: SAO, model_dir: Path) -> None:
    ecmg = ECMG.load(sao, model_dir / "vmb-ecmg")  # tiny builder: small random projections
    try:
        x, t, cond, control, style = _inputs(ecmg)
        with torch.no_grad():
            both = ecmg.v_prediction(x, t, cond, control, style, 7.0)
            control_only = ecmg.v_prediction(x, t, cond, control, None, 7.0)
            style_only = ecmg.v_prediction(x, t, cond, None, style, 7.0)
            neither = ecmg.v_prediction(x, t, cond, None, None, 7.0)
            ecmg.close()
            base = _base(sao, x, t, cond, 7.0)
        assert torch.equal(neither, base)  # no reference given: the base model
        for out in (both, control_only, style_only):
            assert (out - base).abs().max() > 1e-3
        assert not torch.allclose(control_only, style_only)
    finally:
        ecmg.close()


def test_gradients_reach_only_the_new_modules(sao: SAO, model_dir: Path) -> None:
    for ecmg in (ECMG.fresh(sao, control_depth=2), ECMG.load(sao, model_dir / "vmb-ecmg")):
        try:
            sao.model.requires_grad_(False)
            ecmg.adapters.requires_grad_(True)
            x, t, cond, control, style = _inputs(ecmg)
            loss = ecmg.v_loss(x, cond, control, style, t, torch.randn_like(x))
            loss.backward()
            assert all(p.grad is None for p in sao.model.parameters())
            grads = {n: p.grad for n, p in ecmg.adapters.named_parameters()}
            assert all(g is not None for g in grads.values())
            assert grads["controlformer.zero_outs.0.weight"].abs().sum() > 0
            assert grads["stylization.proj.weight"].abs().sum() > 0
        finally:
            ecmg.adapters.zero_grad(set_to_none=True)
            ecmg.close()
    # trained adapters: the gradient also flows back through the branch into its input
    assert grads["controlformer.control_in.weight"].abs().sum() > 0


def test_sao_weights_load_strictly_and_name_the_bad_keys(sao: SAO, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    tmp_path = tmp_path / "sao"
    save_sao(sao, tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    dropped = "model.model.transformer.layers.1.self_attn.to_qkv.weight"
    del state[dropped]
    state["model.model.transformer.layers.9.extra.weight"] = torch.zeros(1)
    key = "model.model.to_cond_embed.0.weight"
    state[key] = torch.zeros(3, 3)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightsError) as err:
        load_sao(tmp_path, None)
    msg = err.value.message
    assert dropped in msg and "layers.9.extra.weight" in msg and key in msg
    assert err.value.details["missing"] == [dropped]

    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match="no model.safetensors"):
        load_sao(tmp_path, None)


def test_adapter_folders_load_strictly(sao: SAO, model_dir: Path, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "ecmg"
    shutil.copytree(model_dir / "vmb-ecmg", folder)
    config = json.loads((folder / "controlformer.json").read_text())
    (folder / "controlformer.json").write_text(json.dumps({**config, "dropout": 0.1}))
    with pytest.raises(WeightsError, match="unknown keys dropout"):
        ECMG.load(sao, folder)
    (folder / "controlformer.json").write_text(json.dumps(config))

    state = load_file(str(folder / "stylization.safetensors"))
    save_file({"proj.weight": state["proj.weight"]}, str(folder / "stylization.safetensors"))
    with pytest.raises(WeightsError, match=r"missing keys: proj\.bias"):
        ECMG.load(sao, folder)

    (folder / "controlformer.json").write_text(json.dumps({**config, "dim": 32}))
    with pytest.raises(WeightsError, match="width 32"):
        ECMG.load(sao, folder)


def test_adapters_save_and_load_round_trip(sao: SAO, model_dir: Path, tmp_path: Path) -> None:
    first = ECMG.load(sao, model_dir / "vmb-ecmg")
    x, t, cond, control, style = _inputs(first, batch=1)
    with torch.no_grad():
        before = first.v_prediction(x, t, cond, control, style, 7.0)
    folder = tmp_path / "saved"
    first.save_adapters(folder)
    saved = {k: v.clone() for k, v in first.adapters.state_dict().items()}
    first.close()
    assert sorted(p.name for p in folder.iterdir()) == [
        "controlformer.json",
        "controlformer.safetensors",
        "stylization.json",
        "stylization.safetensors",
    ]
    second = ECMG.load(sao, folder)
    try:
        loaded = second.adapters.state_dict()
        assert loaded.keys() == saved.keys()
        assert all(torch.equal(loaded[k], saved[k]) for k in saved)
        assert not any(k.startswith(("model.", "transformer.")) for k in loaded)  # no base inside
        with torch.no_grad():
            assert torch.equal(second.v_prediction(x, t, cond, control, style, 7.0), before)
    finally:
        second.close()


def test_t5_comes_from_a_local_folder_only(sao: SAO, tmp_path: Path) -> None:
    from engine.generate.full.sao import LocalT5Conditioner

    cond = LocalT5Conditioner(output_dim=32, t5_model_name="t5-base", max_length=16)
    with pytest.raises(WeightsError, match="not loaded"):
        cond(["text"], "cpu")
    with pytest.raises(WeightsError, match="not a T5 folder"):
        cond.load_encoder(tmp_path / "t5-base")  # a missing folder is never a hub name
    emb, mask = sao.prompt(["slow piano music", "drums"], "cpu")
    assert emb.shape == (2, 128, 32) and mask.shape == (2, 128)  # T5-base's 128 tokens
    assert torch.equal(emb[~mask], torch.zeros_like(emb[~mask]))  # padding zeroed, as SAT


def test_sampler_matches_k_diffusion() -> None:
    from engine.generate.full import compat

    k = compat._load_k_diffusion()
    w = torch.randn(8, 8, generator=torch.Generator().manual_seed(0)) * 0.3

    def model(x: torch.Tensor, sigma: torch.Tensor, **_: object) -> torch.Tensor:
        return torch.tanh(x @ w) / (1 + sigma[:, None, None])

    sigmas = sampling.sigma_schedule(12, 0.03, 1000)
    assert torch.allclose(sigmas, k.sampling.get_sigmas_polyexponential(12, 0.03, 1000, 1.0))
    noises = [torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(i)) for i in range(30)]
    x0 = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(99)) * sigmas[0]
    for name, ref in (
        ("dpmpp-3m-sde", k.sampling.sample_dpmpp_3m_sde),
        ("dpmpp-2m-sde", k.sampling.sample_dpmpp_2m_sde),
    ):
        it_a, it_b = iter(noises), iter(noises)
        expected = ref(
            model, x0.clone(), sigmas, disable=True, noise_sampler=lambda s, n, it=it_a: next(it)
        )
        got = sampling.sample(model, x0.clone(), sigmas, lambda it=it_b: next(it), name)
        assert torch.allclose(got, expected, atol=1e-5), name


def test_full_sao_1_0_layout_and_parameter_count() -> None:
    from engine.generate.full.sao import SAO_1_0_CONFIG, build_sao, check_layout

    full = build_sao(SAO_1_0_CONFIG)  # random weights, ~5 GB
    counts = full.parameter_counts()
    assert counts["dit"] == pytest.approx(1.057e9, rel=0.01)
    assert counts["vae"] == pytest.approx(156e6, rel=0.02)
    layout = check_layout(list(full.model.state_dict()), SAO_1_0_CONFIG)
    assert layout["ok"], layout
    assert layout["dit_layers"] == 24 and layout["keys_per_dit_layer"] == 15
