"""Fine-tuning: a speaker's recordings made into a dataset, and a custom voice trained on it."""
