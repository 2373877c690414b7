# Pure helpers of flake.nix (no nixpkgs needed; tests/test_flake.py evaluates them with nix-instantiate).
rec {
  # "numpy==2.4.6" -> "numpy"; "moto[server]==5.2.5" -> "moto".
  requirementName = requirement: builtins.head (builtins.match "([A-Za-z0-9][A-Za-z0-9._-]*).*" requirement);

  # The project table of pyproject.toml.
  project = pyprojectPath: (builtins.fromTOML (builtins.readFile pyprojectPath)).project;

  # The names of pyproject.toml's runtime dependencies, in its order.
  runtimeNames = pyprojectPath: map requirementName (project pyprojectPath).dependencies;

  # One Python package per runtime dependency: nixpkgs' package of the same name, or an override
  # (pufferlib-core is built here from its PyPI sdist). The exact versions pinned in pyproject.toml are
  # those the Docker images ship; the Nix build takes nixpkgs' versions (pythonRelaxDeps).
  runtimeDependencies =
    pyprojectPath: pythonPackages: overrides:
    map (name: overrides.${name} or pythonPackages.${name}) (runtimeNames pyprojectPath);
}
