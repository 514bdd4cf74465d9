"""Building blocks of the generation pipeline that are not stages themselves."""
