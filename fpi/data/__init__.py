"""Reading, checking and writing trace files: the contract and everything that holds data to it."""
