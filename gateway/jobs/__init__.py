"""Jobs: employers create, update and close them; anyone searches and reads them."""
