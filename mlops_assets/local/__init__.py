"""The embedded default: where its state lives on disk, and ticking the sensors in this process."""
