"""Neurons, backend choice, ANN twin, firing-rate monitor and the registries."""
import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron

import restoration
from restoration.registry import Registry
from restoration.spiking import LIF, OLIF, PLIF, FiringRateMonitor, resolve_backend, set_backend, to_ann


def lif_reference(x_seq, tau, v_th, decay_input):
    """Hard-reset (v_reset = 0) multi-step LIF written from its definition."""
    v = torch.zeros_like(x_seq[0])
    out = []
    for x in x_seq:
        v = v + (x - v) / tau if decay_input else v * (1 - 1 / tau) + x
        s = (v >= v_th).to(x)
        v = v * (1 - s)
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("decay_input", [True, False])
def test_lif_matches_definition(decay_input):
    x = torch.rand(6, 2, 3, 5, 4) * 1.5
    node = LIF(tau=2.0, v_threshold=0.15 if not decay_input else 0.5, decay_input=decay_input)
    got = node(x)
    want = lif_reference(x, 2.0, node.v_threshold, decay_input)
    torch.testing.assert_close(got, want)
    assert node.backend == "torch"  # CPU input: 'auto' resolved to torch
    functional.reset_net(node)
    torch.testing.assert_close(node(x), want)  # after a reset, the same input gives the same output


def test_surrogate_gradient_flows():
    x = (torch.rand(4, 2, 8) * 2).requires_grad_(True)
    for surr in ("atan", "sigmoid"):
        node = LIF(surrogate_function=surr)
        node(x).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        x.grad = None
    with pytest.raises(ValueError, match="unknown surrogate"):
        LIF(surrogate_function="relu")


def test_plif_learns_tau():
    node = PLIF(init_tau=2.0)
    x = torch.rand(4, 3, 8).requires_grad_(True)
    node(x).sum().backward()
    assert node.w.grad is not None


def test_backend_resolution():
    cpu = torch.zeros(1)
    assert resolve_backend("auto", cpu) == "torch"
    assert resolve_backend("torch", cpu) == "torch"
    with pytest.raises(ValueError, match="unknown spiking backend"):
        resolve_backend("numba", cpu)
    with pytest.raises(ValueError, match="unknown spiking backend"):
        LIF(backend="gpu")


def test_set_backend_reaches_every_neuron():
    net = nn.Sequential(layer.Conv2d(3, 4, 3, step_mode="m"), LIF(), nn.Sequential(PLIF(), OLIF()),
                        neuron.IFNode(step_mode="m"))
    set_backend(net, "torch")
    assert [m.requested_backend for m in net.modules() if hasattr(m, "requested_backend")] == ["torch"] * 3
    assert net[3].backend == "torch"


def make_spiking_net():
    return nn.Sequential(
        layer.Conv2d(3, 8, 3, padding=1, step_mode="m"), LIF(),
        layer.Conv2d(8, 8, 3, padding=1, step_mode="m"), PLIF(),
        layer.SeqToANNContainer(OLIF(lif=4, dim=2)),
        layer.Conv2d(8, 3, 1, step_mode="m"),
    )


def test_to_ann_twin():
    net = make_spiking_net()
    twin = to_ann(net)
    assert not any(isinstance(m, (neuron.BaseNode, OLIF)) for m in twin.modules())
    assert sum(isinstance(m, nn.ReLU) for m in twin.modules()) == 3
    neuron_params = {n for n, _ in net.named_parameters() if n.endswith((".w", ".tau", ".Vth"))}
    assert neuron_params == {"3.w", "4.0.tau", "4.0.Vth"}
    want = {n: p for n, p in net.named_parameters() if n not in neuron_params}
    got = dict(twin.named_parameters())
    assert set(got) == set(want)
    for n in want:
        torch.testing.assert_close(got[n], want[n])
        assert got[n].data_ptr() != want[n].data_ptr()  # copied, the original is untouched
    # the original still spikes
    assert isinstance(net[1], LIF)
    x = torch.rand(2, 1, 3, 8, 8)
    assert twin(x).shape == net(x).shape
    with pytest.raises(ValueError, match="no spiking neuron"):
        to_ann(twin)


def test_to_ann_activation_choice_and_in_place():
    net = make_spiking_net()
    twin = to_ann(net, activation=nn.Identity, copy_model=False)
    assert twin is net and isinstance(net[1], nn.Identity)
    net2 = make_spiking_net()
    twin2 = to_ann(net2, activation=nn.LeakyReLU(0.2))
    acts = [m for m in twin2.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 3 and len({id(a) for a in acts}) == 3


def test_firing_rate_monitor_counts_spikes():
    node = LIF(tau=2.0, v_threshold=0.5)
    # constant input 1.0: v = 0.5 at t0 -> spike (>= threshold) every step
    x = torch.ones(4, 2, 10)
    olif_layer = OLIF(lif=2, dim=3, init_vth=0.25, init_tau=0.25)
    img = torch.tensor([[[[1.0, 0.0, 1.0, 0.0]]]])  # spikes at positions 0 and 2 -> rate 0.5
    net = nn.ModuleDict({"lif": node, "olif": olif_layer})
    with FiringRateMonitor(net) as mon:
        net["lif"](x)
        net["olif"](img)
    rates = mon.rates()
    assert rates["lif"] == pytest.approx(1.0)
    assert rates["olif"] == pytest.approx(0.5)
    # zero input: nothing fires
    functional.reset_net(node)
    mon.reset()
    with mon:
        node(torch.zeros(4, 2, 10))
    assert mon.rates()["lif"] == 0.0
    assert not node._forward_hooks  # hooks removed on exit


def test_registry_errors_and_plugins():
    reg = Registry("widget")

    @reg.register("round_widget")
    def make():
        return "round"

    assert reg.get("round_widget")() == "round"
    with pytest.raises(KeyError, match="Did you mean 'round_widget'"):
        reg.get("round_widgt")
    with pytest.raises(KeyError, match="already registered"):
        reg.register("round_widget", obj=lambda: None)
    with pytest.raises(ValueError, match="lower snake case"):
        reg.register("RoundWidget", obj=lambda: None)
    with pytest.raises(KeyError, match="Registered models"):
        restoration.build_model("no_such_model")
