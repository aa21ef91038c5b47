from opencite.cli.main import main

main()
