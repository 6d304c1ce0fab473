"""Evidence packages (BagIt, composite image, signature): not built yet — see issue 6."""
