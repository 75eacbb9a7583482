//! The typed boundary: bytes of a message kind decoded once (`wire::decode_to_node`,
//! `wire::decode_to_maintainer`) and handed to the node's one entry point
//! (`Orchestrator::handle`) or the maintainer's `Event::received`.

use dispatcher_core::ids::{Epoch, NodeId};
use dispatcher_core::maintainer::Event;
use dispatcher_core::messages::*;
use dispatcher_core::node::{DropReason, Effect, Orchestrator, Outcome};
use dispatcher_core::wire::{
    decode_to_maintainer, decode_to_node, encode_to_maintainer, encode_to_node, WireError,
};

use super::manager::{bootstrap_request, create, id, merge, mt, span};

#[test]
fn every_kind_is_named_by_its_protobuf_message_and_has_one_direction() {
    for kind in MessageKind::ALL {
        assert_eq!(kind.name().parse(), Ok(kind));
        assert!(dispatcher_core::wire::message_names().iter().any(|n| n.ends_with(kind.name())), "{kind}");
        // A kind goes one way: the other side's decoder refuses it without looking at the bytes.
        let refused = if kind.to_node() {
            decode_to_maintainer(kind, &[]).err()
        } else {
            decode_to_node(kind, &[]).err()
        };
        assert!(matches!(refused, Some(WireError::NotHandled { .. })), "{kind}: {refused:?}");
    }
    assert!("Ping".parse::<MessageKind>().is_err());
}

#[test]
fn a_message_for_the_node_round_trips_through_its_kind_and_bytes() {
    let messages = [
        ToNode::Bootstrap(bootstrap_request(3, Some(id(9)))),
        ToNode::Schedule(create(id(1), span(1, b"a", b"m"), dispatcher_core::ids::Mode::Redo, 3)),
        ToNode::Merge(MergeRequest { epoch: Epoch(3), ..merge(&[id(1), id(2)], id(3)) }),
    ];
    for message in messages {
        let (kind, bytes) = encode_to_node(&message);
        assert_eq!(kind, message.kind());
        assert_eq!(decode_to_node(kind, &bytes), Ok(message));
    }
}

#[test]
fn bytes_that_are_not_the_named_message_are_a_wire_error_not_a_panic() {
    let garbage = [0xff, 0xff, 0xff];
    let e = decode_to_node(MessageKind::ScheduleDispatcherRequest, &garbage).unwrap_err();
    assert_eq!(e, WireError::Undecodable { message: "ScheduleDispatcherRequest" });
    // A create without a span decodes as protobuf but is refused by validation.
    // (The domain type cannot hold one, so the span is cleared in the protobuf message.)
    use prost::Message;
    let create = create(id(1), span(1, b"a", b"m"), dispatcher_core::ids::Mode::Default, 3);
    let (kind, bytes) = encode_to_node(&ToNode::Schedule(create));
    let mut pb = dispatcher_core::wire::pb::ScheduleDispatcherRequest::decode(&bytes[..]).unwrap();
    pb.config.as_mut().unwrap().span = None;
    let e = decode_to_node(kind, &pb.encode_to_vec()).unwrap_err();
    assert_eq!(e, WireError::Missing { message: "ScheduleDispatcherRequest", field: "config.span" });
}

#[test]
fn the_node_drops_requests_for_a_changefeed_it_was_never_bootstrapped_for() {
    let node = Orchestrator::new(NodeId::new("n1"));
    let request = create(id(1), span(1, b"a", b"m"), dispatcher_core::ids::Mode::Default, 2);
    let step = node.handle(&mt(), ToNode::Schedule(request.clone()));
    assert_eq!(step.outcome, Outcome::Dropped(DropReason::UnknownChangefeed));
    assert!(step.effects.is_empty());
    // Bootstrapped through the same entry point, the same request creates the dispatcher.
    let boot = node.handle(&mt(), ToNode::Bootstrap(bootstrap_request(2, None)));
    assert_eq!(boot.outcome, Outcome::Applied);
    let step = node.handle(&mt(), ToNode::Schedule(request));
    assert_eq!(step.outcome, Outcome::Applied);
    assert!(step.effects.iter().any(|e| matches!(e, Effect::Create(t) if t.id() == id(1))));
}

#[test]
fn a_node_answer_reaches_the_maintainer_as_its_event() {
    let answer = ToMaintainer::PostBootstrap(PostBootstrapResponse {
        changefeed: Default::default(),
        trigger: Some(id(4)),
        err: None,
        epoch: Epoch(2),
    });
    let (kind, bytes) = encode_to_maintainer(&answer);
    let decoded = decode_to_maintainer(kind, &bytes).unwrap();
    assert_eq!(decoded, answer);
    assert!(matches!(Event::received(mt(), decoded), Some(Event::PostBootstrapResponse { .. })));
    // The close answer is the coordinator's to read, not the maintainer core's.
    let close =
        ToMaintainer::Close(CloseResponse { changefeed: Default::default(), success: true, epoch: Epoch(2) });
    assert!(Event::received(mt(), close).is_none());
}
