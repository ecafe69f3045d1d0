"""Operation counting and the energy formula on networks whose answer is known."""
import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import layer

from restoration.energy import E_AC_PJ, E_MAC_PJ, count_ops
from restoration.spiking import LIF


class TwoLayer(nn.Module):
    """conv (real input) -> LIF -> conv (spike input), multi-step over T."""

    def __init__(self, bias_value):
        super().__init__()
        self.conv1 = layer.Conv2d(3, 4, 3, padding=1, step_mode="m")
        self.lif = LIF(tau=2.0, v_threshold=1.0, decay_input=False)
        self.conv2 = layer.Conv2d(4, 2, 1, step_mode="m")
        nn.init.zeros_(self.conv1.weight)
        nn.init.constant_(self.conv1.bias, bias_value)

    def forward(self, x):
        return self.conv2(self.lif(self.conv1(x)))


@pytest.mark.parametrize("bias, rate", [(5.0, 1.0), (-1.0, 0.0)])
def test_two_layer_closed_form(bias, rate):
    T, N, H, W = 4, 2, 6, 5
    net = TwoLayer(bias)
    x = torch.rand(T, N, 3, H, W)
    ops = count_ops(net, x)
    macs1 = T * N * 4 * H * W * 3 * 9  # out elements x in_channels x 3x3
    macs2 = T * N * 2 * H * W * 4 * 1
    assert [r.macs for r in ops.layers] == [macs1, macs2]
    assert [r.spike_input for r in ops.layers] == [False, True]
    # bias 5, no input decay: v = 5 >= 1 every step -> every neuron fires; bias -1: none do
    assert ops.layers[1].input_rate == pytest.approx(rate)
    assert ops.macs == macs1 + macs2 and ops.other_macs == 0
    assert ops.sops == pytest.approx(macs2 * rate)
    assert ops.energy_pj == pytest.approx(E_MAC_PJ * macs1 + E_AC_PJ * macs2 * rate)


def test_half_firing_and_matmul_outside_layers():
    class Net(nn.Module):
        """A spiking model whose neuron layer is fed from outside (s are its spikes)."""

        def __init__(self):
            super().__init__()
            self.lif = LIF()
            self.fc = nn.Linear(8, 3, bias=False)

        def forward(self, s, a, b):
            return self.fc(s), a @ b

    s = torch.zeros(5, 8)
    s[:, :4] = 1.0  # binary input, half of it firing
    a, b = torch.rand(2, 7, 6), torch.rand(2, 6, 9)
    ops = count_ops(Net(), s, a, b)
    (fc,) = ops.layers
    assert fc.macs == 5 * 3 * 8 and fc.spike_input and fc.input_rate == pytest.approx(0.5)
    assert ops.other_macs == 2 * 7 * 6 * 9
    assert ops.sops == pytest.approx(60.0)


def test_transposed_conv_macs():
    net = nn.ConvTranspose2d(4, 6, 2, stride=2)
    x = torch.rand(1, 4, 5, 5)
    ops = count_ops(net, x)
    assert ops.layers[0].macs == 4 * 25 * 6 * 4  # each input scattered to 6 maps through a 2x2 kernel


def test_binary_input_to_an_ann_is_not_spikes():
    net = nn.Sequential(nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False))
    nn.init.constant_(net[0].weight, -1.0)  # positive input -> dead ReLU -> all-zero (binary) input
    ops = count_ops(net, torch.rand(3, 4) + 0.1)
    assert [r.spike_input for r in ops.layers] == [False, False]
    assert ops.sops == 0 and ops.energy_pj == pytest.approx(E_MAC_PJ * ops.macs)
