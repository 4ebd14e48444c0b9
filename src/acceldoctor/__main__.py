from acceldoctor.cli.app import main

main()
