"""Published numbers of Butter, Plehn & Winterhalder (arXiv:1907.03764), for comparison only; never an output.

Sources: the talk slides "How to GAN LHC Events" (table "Network Parameters", slide "Momentum Conservation by the
Network") and Butter & Plehn, "Generative Networks for LHC Events", section 4.3.
"""

# Slides, table "Network Parameters".
NETWORK_PARAMETERS = {
    "input_dimension_G": "18 + 6",
    "layers": 10,
    "units_per_layer": 512,
    "trainable_weights_G": 2382866,
    "trainable_weights_D": 2377217,
    "lambda_D": 1e-3,
    "lambda_G": 1,
    "batch_size": 1024,
    "epochs": 1000,
    "iterations_per_epoch": 1000,
    "training_time": "26h",
    "training_data_size": 1_000_000,
}
NETWORK_PARAMETERS_REF = "slides, table 'Network Parameters'"

# Slides, "Momentum Conservation by the Network": "The generator learns to conserve momentum at a 1% level."
MOMENTUM_CONSERVATION_LEVEL = 0.01
# Review section 4.3 (Fig. 14): "agreement with the training data at the 10% level".
BULK_AGREEMENT_LEVEL = 0.10
