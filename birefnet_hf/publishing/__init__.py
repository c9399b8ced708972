# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The parts of ``birefnet-hf publish`` (the command itself is :mod:`birefnet_hf.publish`, which re-exports them):

* :mod:`~birefnet_hf.publishing.plan`: options -> one plan per backbone size or released family (phase 1);
* :mod:`~birefnet_hf.publishing.weights`: the weights checked against the published config, then loaded;
* :mod:`~birefnet_hf.publishing.hub_folder`: the repository folder's files, and its upload in one commit (phase 3);
* :mod:`~birefnet_hf.publishing.remote_check`: the ``trust_remote_code`` check in a fresh process without
  ``birefnet_hf`` (a script of its own, run by file path).
"""
