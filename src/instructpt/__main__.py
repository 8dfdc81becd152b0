"""`python -m instructpt ...`: what torchrun launches (`torchrun ... -m instructpt pretrain`)."""

from instructpt.cli import main

if __name__ == "__main__":
    main()
