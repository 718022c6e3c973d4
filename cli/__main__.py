from bertsearch.cli.main import main

main()
