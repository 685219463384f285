import torch

from asrk2.checkpoint import (
    average_checkpoints,
    epoch_checkpoints,
    save_checkpoint,
)


def test_average_checkpoints_is_elementwise_mean(tmp_path):
    states = []
    for epoch in (1, 2, 3):
        model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
        model[1].num_batches_tracked.fill_(epoch)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        save_checkpoint(tmp_path / f"epoch-{epoch}.pt", {"model": model.state_dict()})
    paths = epoch_checkpoints(tmp_path)
    assert [p.name for p in paths] == ["epoch-1.pt", "epoch-2.pt", "epoch-3.pt"]
    avg = average_checkpoints(paths[1:])
    for name, value in avg.items():
        if value.is_floating_point():
            expected = (states[1][name] + states[2][name]) / 2
            assert torch.allclose(value, expected, atol=1e-6), name
    assert int(avg["1.num_batches_tracked"]) == 3
    assert not list(tmp_path.glob(".*"))  # no temp files left behind
