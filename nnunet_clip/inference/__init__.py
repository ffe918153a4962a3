"""``nnunet-clip predict``: the Universal Model's prediction on nnU-Net's predictor, as a product."""
