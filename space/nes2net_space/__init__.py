"""The Space's layer over the `modeling_nes2net` detection API: input limits, the models on offer, plain words."""
