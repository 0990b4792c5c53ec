"""MPC protocols over the core: pure functions of shares and a `PartyContext`."""
