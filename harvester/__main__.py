from .cli import main

if __name__ == "__main__":  # a worker process may import this module: do nothing then
    main()
