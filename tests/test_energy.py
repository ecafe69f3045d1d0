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


# -- memory-aware estimate ---------------------------------------------------------------

from restoration.energy import MEMORY_LEVELS, BitWidths, MemoryLevel, memory_energy_pj, memory_traffic  # noqa: E402


class TwoLayerANN(nn.Module):
    """The ANN twin of :class:`TwoLayer`: the LIF replaced by a ReLU."""

    def __init__(self):
        super().__init__()
        self.conv1 = layer.Conv2d(3, 4, 3, padding=1, step_mode="m")
        self.relu = nn.ReLU()
        self.conv2 = layer.Conv2d(4, 2, 1, step_mode="m")

    def forward(self, x):
        return self.conv2(self.relu(self.conv1(x)))


def test_memory_traffic_of_two_layer_snn_and_twin_by_hand():
    T, N, H, W = 4, 1, 6, 5
    x = torch.rand(T, N, 3, H, W)
    snn = count_ops(TwoLayer(5.0), x)  # every neuron fires every step
    ann = count_ops(TwoLayerANN(), x[:1])  # the twin runs once (T = 1)
    px = H * W
    # SNN, multi-step: each conv is called once on all T steps, so fetches its weights once
    w1, w2 = 4 * 3 * 9 + 4, 2 * 4 + 2  # weight + bias elements
    t = memory_traffic(snn)
    assert t.weight_reads == 32 * (w1 + w2)
    assert t.input_reads == 32 * T * 3 * px + 1 * T * 4 * px  # image at 32 bits, spikes at 1
    assert t.output_writes == 32 * (T * 4 * px + T * 2 * px)
    assert snn.neurons == [("lif", T * 4 * px)]
    assert t.state_reads == t.state_writes == 32 * T * 4 * px
    a = memory_traffic(ann)
    assert ann.neurons == []
    assert a.weight_reads == 32 * (w1 + w2)
    assert a.input_reads == 32 * (3 * px + 4 * px)  # the ReLU's output is real-valued
    assert a.output_writes == 32 * (4 * px + 2 * px)
    assert a.state_reads == a.state_writes == 0
    # in numbers (bits): SNN reads 3904 weights + 11520 image + 480 spikes + 15360 state,
    # writes 23040 outputs + 15360 state; ANN reads 3904 + 6720, writes 5760
    assert t.reads == 3904 + 11520 + 480 + 15360 == 31264 and t.writes == 23040 + 15360 == 38400
    assert a.reads == 3904 + 6720 and a.writes == 5760
    sram, dram = MEMORY_LEVELS["sram"], MEMORY_LEVELS["dram"]
    assert memory_energy_pj(t, sram) == pytest.approx((31264 + 38400) / 64 * 10.0)
    assert memory_energy_pj(a, dram) == pytest.approx((10624 + 5760) / 64 * 1300.0)
    # ops energies from the existing count: the memory-aware totals add the two
    e_snn_ops = E_MAC_PJ * T * 4 * px * 27 + E_AC_PJ * T * 2 * px * 4
    e_ann_ops = E_MAC_PJ * (4 * px * 27 + 2 * px * 4)
    assert snn.energy_pj == pytest.approx(e_snn_ops) and ann.energy_pj == pytest.approx(e_ann_ops)


def test_memory_traffic_options():
    T, N, H, W = 2, 1, 3, 3
    count = count_ops(TwoLayer(5.0), torch.rand(T, N, 3, H, W))
    # 8-bit weights and activations, 16-bit membrane; spikes stay 1 bit
    t = memory_traffic(count, bits=BitWidths(weights=8, activations=8, membrane=16))
    assert t.weight_reads == 8 * (112 + 10)
    assert t.input_reads == 8 * T * 3 * 9 + T * 4 * 9
    assert t.state_reads == 16 * T * 4 * 9
    # a per-layer spike map (as the benchmark measures it) overrides the count's own rule
    dense = memory_traffic(count, spike_input={})
    assert dense.input_reads == 32 * (T * 3 * 9 + T * 4 * 9)
    level = MemoryLevel("test", read_pj_64b=64.0, write_pj_64b=128.0, source="made up")
    assert memory_energy_pj(t, level) == pytest.approx(t.reads + 2 * t.writes)


def test_olif_state_counts_real_outputs_and_identity_has_none():
    from restoration.spiking import OLIF

    class Net(nn.Module):
        def __init__(self, lif):
            super().__init__()
            self.conv1 = nn.Conv2d(2, 3, 1, bias=False)
            self.olif = OLIF(lif=lif, dim=2)
            self.conv2 = nn.Conv2d(3, 1, 1, bias=False)

        def forward(self, x):
            return self.conv2(self.olif(self.conv1(x)))

    x = torch.rand(1, 2, 4, 4) + 1.0
    count = count_ops(Net(4), x)
    assert count.neurons == [("olif", 3 * 16)]
    t = memory_traffic(count)
    assert [r.spike_input for r in count.layers] == [False, False]  # OLIF emits real values
    assert t.input_reads == 32 * (2 * 16 + 3 * 16) and t.state_reads == 32 * 48
    assert count_ops(Net(-1), x).neurons == [("olif", 0)]
