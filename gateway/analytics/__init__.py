"""Analytics reads for analysts: windowed counts, funnels, rejection reasons."""
