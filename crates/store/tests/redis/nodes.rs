//! Two stores on one namespace: two nodes of a cluster.
