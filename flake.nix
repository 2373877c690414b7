{
  description = "cluster-code-rl: reinforcement-learning agents that diagnose and repair Kubernetes clusters";

  # nixos-25.11; flake.lock pins the revision and its narHash (`nix flake update` moves it).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      helpers = import ./nix/lib.nix;
      version = (helpers.project ./pyproject.toml).version;
      # PyPI artifacts built here, with the sha256 of each (tests/test_flake.py checks them against PyPI).
      pypiSources = builtins.fromJSON (builtins.readFile ./nix/pypi-sources.json);
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];

      perSystem =
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          python = pkgs.python3;
          ps = python.pkgs;

          pufferlibSource = pypiSources.pufferlib-core;
          # PufferLib's core, compiled against nixpkgs' torch (CPU only), as `pip install
          # --no-build-isolation pufferlib-core==3.0.16` does in the images.
          pufferlib-core = ps.buildPythonPackage {
            pname = "pufferlib-core";
            inherit (pufferlibSource) version;
            pyproject = true;
            src = ps.fetchPypi { inherit (pufferlibSource) pname version hash; };
            # Its build-system table pins torch==2.9.0, numpy==2.3.3 and the build tools exactly; the
            # extension has to be built against the torch it will run with, nixpkgs' own.
            postPatch = ''
              sed -i -E 's/"(setuptools|wheel|numpy|torch|setuptools_scm)==[^"]*"/"\1"/' pyproject.toml
            '';
            build-system = with ps; [
              setuptools
              setuptools-scm
              wheel
              numpy
              torch
            ];
            dependencies = with ps; [
              numpy
              gymnasium
              psutil
              torch
              nvidia-ml-py
              rich
              rich-argparse
              setuptools
              pyro-ppl
            ];
            env.PUFFERLIB_DISABLE_CUDA = "1";
            pythonRelaxDeps = true;
            # The sdist ships no test suite; importing pufferlib loads the compiled pufferlib._C.
            doCheck = false;
            pythonImportsCheck = [ "pufferlib" ];
          };

          runtimeDependencies = helpers.runtimeDependencies ./pyproject.toml ps {
            inherit pufferlib-core;
          };

          cluster-rl = ps.buildPythonApplication {
            pname = "cluster-code-rl";
            inherit version;
            pyproject = true;
            src = lib.fileset.toSource {
              root = ./.;
              fileset = lib.fileset.unions [
                ./pyproject.toml
                ./README.md
                ./rl
                ./entrypoint
                ./cluster_env.py
              ];
            };
            build-system = with ps; [
              setuptools
              wheel
            ];
            dependencies = runtimeDependencies;
            # pyproject.toml pins the exact versions the Docker images ship; nixpkgs has its own.
            pythonRelaxDeps = true;
            # The test suite needs podman, moto and a fake API server: `make test` runs it (CI), not Nix.
            doCheck = false;
            pythonImportsCheck = [
              "rl"
              "entrypoint.cli"
            ];
            meta = {
              description = "Train and run RL agents that diagnose and repair Kubernetes clusters";
              license = lib.licenses.mit;
              mainProgram = "cluster-rl";
            };
          };

          # The CPU image, like Dockerfile's: non-root uid 10001 (or any other), HOME and caches in /tmp,
          # /data for models and runs. Layers and file dates are fixed by the inputs (created = epoch 1).
          image = pkgs.dockerTools.buildLayeredImage {
            name = "cluster-code-rl";
            tag = "${version}-cpu-nix";
            contents = [
              cluster-rl
              pkgs.cacert
            ];
            extraCommands = ''
              mkdir -p data tmp etc
              chmod 1777 data tmp
              printf 'root:x:0:0::/root:/bin/false\nrl:x:10001:10001::/tmp:/bin/false\n' >etc/passwd
              printf 'root:x:0:\nrl:x:10001:\n' >etc/group
            '';
            config = {
              Entrypoint = [ (lib.getExe cluster-rl) ];
              Cmd = [ "--help" ];
              User = "10001:10001";
              WorkingDir = "/data";
              Volumes."/data" = { };
              Env = [
                "CLUSTER_CODE_HOME=/data"
                "HOME=/tmp"
                "NUMBA_CACHE_DIR=/tmp/numba-cache"
                "MPLCONFIGDIR=/tmp/matplotlib"
                "PYTHONDONTWRITEBYTECODE=1"
                "PYTHONUNBUFFERED=1"
                "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
              ];
              Labels = {
                "org.opencontainers.image.title" = "cluster-code-rl";
                "org.opencontainers.image.description" = "RL agents that diagnose and repair Kubernetes clusters (CPU, Nix)";
                "org.opencontainers.image.licenses" = "MIT";
                "org.opencontainers.image.source" = "https://github.com/cluster-code/cluster-code-rl";
                "org.opencontainers.image.version" = version;
                "org.opencontainers.image.revision" = self.rev or "dirty";
              };
            };
          };

          devShell = pkgs.mkShell {
            packages = [
              (python.withPackages (
                _:
                runtimeDependencies
                ++ (with ps; [
                  pytest
                  moto
                  jsonschema
                ])
              ))
              pkgs.ruff
              pkgs.hadolint
              pkgs.actionlint
              pkgs.shellcheck
              pkgs.uv
              pkgs.kubectl
              pkgs.podman
              pkgs.gnumake
            ];
            # The source tree itself is imported from the checkout.
            shellHook = ''
              export PYTHONPATH="$PWD"
            '';
          };
        in
        {
          inherit
            pufferlib-core
            cluster-rl
            image
            devShell
            pkgs
            ;
        };

      bySystem = lib.genAttrs systems perSystem;
    in
    {
      packages = lib.mapAttrs (_: s: {
        default = s.cluster-rl;
        inherit (s) image pufferlib-core;
      }) bySystem;

      apps = lib.mapAttrs (_: s: {
        default = {
          type = "app";
          program = lib.getExe s.cluster-rl;
          meta.description = "The cluster-rl command line";
        };
      }) bySystem;

      devShells = lib.mapAttrs (_: s: { default = s.devShell; }) bySystem;

      checks = lib.mapAttrs (_: s: {
        package = s.cluster-rl;
        cli-help = s.pkgs.runCommand "cluster-rl-help" { } ''
          HOME=$TMPDIR ${lib.getExe s.cluster-rl} --help >$out
        '';
      }) bySystem;
    };
}
