from robustmia.cli import main

main()
