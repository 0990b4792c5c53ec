"""The MPC core: rings, shares, fixed point, PRG, dealer material, transport and context."""
