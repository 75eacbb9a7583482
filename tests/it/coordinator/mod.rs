//! The coordinator level: the messages between the coordinator and every node's maintainer
//! manager, through the typed boundary.

mod boundary;
