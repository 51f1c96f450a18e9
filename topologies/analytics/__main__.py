from topologies.analytics.topology import main

main()
