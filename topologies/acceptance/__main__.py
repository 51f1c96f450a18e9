from topologies.acceptance.topology import main

main()
