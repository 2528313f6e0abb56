#!/usr/bin/env python3
"""An independent AMQP 1.0 client (qpid-proton) for the AMQP head's tests.

Reads one JSON object from argv[1]: {"port", "ca", "hub", "identities": [{"id", "key"}], "count", "mode"} and
prints one JSON object with what happened. Modes: "load" (CBS for every identity on one connection, each
identity on its own link, `count` messages on the first identity's link, one on each other) and
"refusals" (bad token, expired token, another identity's address, oversized message, then a good message).
"""
import base64, hashlib, hmac, json, sys, time, urllib.parse

from proton import Message, SSLDomain, Endpoint
from proton.utils import BlockingConnection, LinkDetached


def sas(hub, ident, key, secs=600):
    dev, _, mod = ident.partition("/")
    resource = f"{hub}/devices/{dev}" + (f"/modules/{mod}" if mod else "")
    sr = urllib.parse.quote(resource, safe="")
    se = int(time.time()) + secs
    sig = base64.b64encode(hmac.new(base64.b64decode(key), f"{sr}\n{se}".encode(), hashlib.sha256).digest()).decode()
    return f"SharedAccessSignature sr={sr}&sig={urllib.parse.quote(sig, safe='')}&se={se}"


class Client:
    def __init__(self, port, ca):
        domain = SSLDomain(SSLDomain.MODE_CLIENT)
        domain.set_trusted_ca_db(ca)
        domain.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
        self.conn = BlockingConnection(f"amqps://localhost:{port}", ssl_domain=domain, allowed_mechs="ANONYMOUS", timeout=20)
        # Distinct link names: rhea keys a session's links by name alone, so a sender and a receiver that share
        # proton's default name (the address) collide ("Attach already received") and that connection is closed.
        self.cbs_rcv = self.conn.create_receiver("$cbs", credit=10, name="cbs-receiver")
        self.cbs_snd = self.conn.create_sender("$cbs", name="cbs-sender")
        self.n = 0

    def put_token(self, token):
        self.n += 1
        mid = f"py-cbs-{self.n}"
        self.cbs_snd.send(Message(id=mid, address="$cbs", reply_to="cbs", body=token,
                                  properties={"operation": "put-token", "type": "servicebus.windows.net:sastoken", "name": ""}))
        while True:
            reply = self.cbs_rcv.receive(timeout=20)
            self.cbs_rcv.accept()
            if reply.correlation_id == mid:
                return int(reply.properties["status-code"])

    def send(self, sender, msg):
        """Sends and waits for the settlement; returns (state name, condition or None)."""
        dlv = sender.link.send(msg)
        self.conn.wait(lambda: dlv.remote_state != 0 or dlv.settled or sender.link.state & Endpoint.REMOTE_CLOSED,
                       timeout=20, msg="waiting for settlement")
        if sender.link.state & Endpoint.REMOTE_CLOSED:
            cond = sender.link.remote_condition
            return "detached", cond.name if cond else None
        cond = dlv.remote.condition
        names = {dlv.ACCEPTED: "accepted", dlv.REJECTED: "rejected", dlv.RELEASED: "released", dlv.MODIFIED: "modified"}
        return names.get(dlv.remote_state, str(dlv.remote_state)), cond.name if cond else None


def load(args):
    c = Client(args["port"], args["ca"])
    ids = args["identities"]
    statuses = [c.put_token(sas(args["hub"], i["id"], i["key"])) for i in ids]
    senders = []
    for i in ids:
        senders.append(c.conn.create_sender(f"/devices/{i['id']}/messages/events", name=f"events-{i['id']}"))
    accepted = 0
    start = time.time()
    first = senders[0]
    pending = [first.link.send(Message(body=f"m{n}", properties={"n": n})) for n in range(args["count"])]
    c.conn.wait(lambda: all(d.remote_state != 0 for d in pending), timeout=60, msg="waiting for 1000 settlements")
    accepted += sum(1 for d in pending if d.remote_state == d.ACCEPTED)
    elapsed = time.time() - start
    others = [c.send(s, Message(body=f"hello from {i['id']}")) for s, i in zip(senders[1:], ids[1:])]
    c.conn.close()
    return {"statuses": statuses, "accepted": accepted, "seconds": elapsed, "others": [o[0] for o in others]}


def refusals(args):
    c = Client(args["port"], args["ca"])
    me, other = args["identities"][0], args["identities"][1]
    out = {
        "bad_token": c.put_token(sas(args["hub"], me["id"], base64.b64encode(b"wrong key 32 bytes long........").decode())),
        "expired_token": c.put_token(sas(args["hub"], me["id"], me["key"], secs=-3600)),
        "good_token": c.put_token(sas(args["hub"], me["id"], me["key"])),
    }
    try:
        foreign = c.conn.create_sender(f"/devices/{other['id']}/messages/events", name="foreign")
        out["other_address"] = c.send(foreign, Message(body="not mine"))
    except LinkDetached as e:
        out["other_address"] = ["detached", getattr(e, "condition", None)]
    mine = c.conn.create_sender(f"/devices/{me['id']}/messages/events", name="mine")
    out["oversized"] = c.send(mine, Message(body=b"x" * (1024 * 1024 + 10)))
    out["after"] = c.send(mine, Message(body="still fine"))
    c.conn.close()
    return out


if __name__ == "__main__":
    a = json.loads(sys.argv[1])
    print(json.dumps(load(a) if a.get("mode") == "load" else refusals(a)))
