"""gconv's benchmark tooling, apart from the library: the core package (gconv/) computes and
never imports this subpackage; the ``gconv bench`` subcommand (gconv/_cli.py) and the
pytest-benchmark suite (bench/) do.

    layers.py        the bench layers: BenchLayer, LAYERS, select_layers (one catalogue)
    sweep.py         random realistic layers from named families (gconv bench --sweep)
    model.py         a user's torch model's convolutions as layers (gconv bench --model)
    peers.py         running a layer in gconv, torch, onnxruntime, OpenVINO; PeerThreads
    peer_process.py  a peer in a child process of its own, frozen while others are timed
    timing.py        samples, interleaved rounds, their statistics
    machine.py       CPU model, measured FMA peak, /proc process times, other processes' load
    _fma_peak.pyx    the FMA-peak probe (fma_peak.h), an extension of its own
    report.py        the printed table; plot.py the ratio chart
    cli.py           ``gconv bench``: its options and its driver

Importing this package imports none of its modules: import the one you need.
"""
