"""What the HTTP client (``modelport.client``) needs beside its calls: error answers
back to exceptions, and package files up and down with their digests."""
