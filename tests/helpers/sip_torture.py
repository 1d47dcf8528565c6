"""SIP torture messages for tests, written after the categories of RFC 4475 section 3 (the RFC's
own bit-exact archive is not available offline here): valid but tortuous requests, and invalid
ones a parser must survive: bad lengths and numbers, broken quoting and URIs, unknown versions
and schemes, binary junk, several messages in one datagram. Each is addressed to dst:dst_port and
claims to come from src:src_port."""

from __future__ import annotations

import uuid

SDP = (
    "v=0\r\no=t 1 1 IN IP4 {src}\r\ns=-\r\nc=IN IP4 {src}\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _msg(lines: list[str], body: str = "") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8", "surrogateescape")


def torture_messages(
    *, src: str, src_port: int, dst: str, dst_port: int
) -> list[tuple[str, bytes]]:
    def via() -> str:
        return f"Via: SIP/2.0/UDP {src}:{src_port};branch=z9hG4bK{uuid.uuid4().hex}"

    def cid() -> str:
        return f"Call-ID: {uuid.uuid4().hex}@{src}"

    ruri = f"sip:+919876543210@{dst}:{dst_port}"
    sdp = SDP.format(src=src)
    out: list[tuple[str, bytes]] = []

    # Valid but tortuous: line folding, odd case, compact forms, escaped quotes, leading zeros.
    out.append(
        (
            "folded",
            _msg(
                [
                    f"INVITE {ruri};unknownparam SIP/2.0",
                    "TO :\r\n t@example.com ;   tag    = 1918181833n",
                    'from   : "J Rosenberg \\\\\\"" <sip:jdrosen@example.com>'
                    "\r\n  ;\r\n  tag = 98asjd8",
                    "MaX-fOrWaRdS: 0068",
                    cid(),
                    "Content-Length   : " + str(len(sdp)),
                    "cseq: 0009\r\n  INVITE",
                    "Via  : SIP  /   2.0\r\n /UDP\r\n    "
                    f"{src}:{src_port};branch=z9hG4bK{uuid.uuid4().hex}",
                    "s :",
                    "NewFangledHeader:   newfangled value\r\n continued newfangled value",
                    "UnknownHeaderWithUnusualValue: ;;,,;;,;",
                    "Content-Type: application/sdp",
                    'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ;'
                    " newparam =\r\n newvalue ;",
                    "v:  SIP  / 2.0  / UDP  example.com;branch=z9hG4bKkdjuw2349i",
                ],
                sdp,
            ),
        )
    )
    # An unknown method full of token characters.
    out.append(
        (
            "intmeth",
            _msg(
                [
                    f"!interesting-Method0123456789_*+`.%indeed'~ {ruri} SIP/2.0",
                    via(),
                    "Max-Forwards: 70",
                    f"From: <sip:a@{src}>;tag=1",
                    f"To: <{ruri}>",
                    cid(),
                    "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~",
                    "Content-Length: 0",
                ]
            ),
        )
    )
    # Escapes, including an escaped NUL, in URIs.
    out.append(
        (
            "escnull",
            _msg(
                [
                    f"REGISTER sip:{dst} SIP/2.0",
                    via(),
                    "Max-Forwards: 70",
                    f"From: sip:null-%00-null@{src};tag=839923423",
                    "To: sip:null-%00-null@example.com",
                    cid(),
                    "CSeq: 14398234 REGISTER",
                    "Contact: <sip:%00@host5.example.com>",
                    "Contact: <sip:%00%00@host5.example.com>",
                    "L:0",
                ]
            ),
        )
    )
    out.append(
        (
            "esc02",
            _msg(
                [
                    f"RE%47IST%45R sip:{dst} SIP/2.0",
                    via(),
                    "Max-Forwards: 70",
                    f'From: "%Z%45" <sip:resource@{src}>;tag=f232jadfj23',
                    '"To: "%Z%45" <sip:resource@x>',
                    cid(),
                    "CSeq: 29344 RE%47IST%45R",
                    "C%6Fntact: <sip:alias2@host2.example.com>",
                    "l: 0",
                ]
            ),
        )
    )
    # Two requests in one datagram (UDP: the second must be ignored, not parsed as a body).
    first = [
        f"OPTIONS {ruri} SIP/2.0",
        via(),
        "Max-Forwards: 70",
        f"From: <sip:a@{src}>;tag=2",
        f"To: <{ruri}>",
        cid(),
        "CSeq: 1 OPTIONS",
        "Content-Length: 0",
    ]
    out.append(("dblreq", _msg(first) + _msg([*first[:1], via(), *first[2:]])))
    # A long request: huge header values, many Vias, a 2,000-character token.
    out.append(
        (
            "longreq",
            _msg(
                [
                    f"INVITE {ruri};{'x' * 2000}=1 SIP/2.0",
                    *(via() for _ in range(60)),
                    "Max-Forwards: 70",
                    f'From: "{"A" * 3000}" <sip:a@{src}>;tag={"t" * 500}',
                    f"To: <{ruri}>",
                    cid(),
                    "CSeq: 1 INVITE",
                    "X-Long: " + "y" * 8000,
                    "Content-Type: application/sdp",
                    f"Content-Length: {len(sdp)}",
                ],
                sdp,
            ),
        )
    )
    # Bad numbers: a Content-Length bigger than the datagram, negative, overflowing scalars.
    base = [via(), "Max-Forwards: 70", f"From: <sip:a@{src}>;tag=3", f"To: <{ruri}>"]
    out.append(
        (
            "clerr",
            _msg(
                [
                    f"INVITE {ruri} SIP/2.0",
                    *base,
                    cid(),
                    "CSeq: 1 INVITE",
                    "Content-Type: application/sdp",
                    "Content-Length: 9999",
                ],
                sdp,
            ),
        )
    )
    out.append(
        (
            "ncl",
            _msg(
                [
                    f"INVITE {ruri} SIP/2.0",
                    *base,
                    cid(),
                    "CSeq: 1 INVITE",
                    "Content-Type: application/sdp",
                    "Content-Length: -999",
                ],
                sdp,
            ),
        )
    )
    out.append(
        (
            "scalar02",
            _msg(
                [
                    f"REGISTER sip:{dst} SIP/2.0",
                    via(),
                    "Max-Forwards: 300",
                    f"From: <sip:a@{src}>;tag=4",
                    "To: <sip:b@example.com>",
                    cid(),
                    "CSeq: 36893488147419103232 REGISTER",
                    "Expires: 1" + "0" * 40,
                    "Contact: <sip:a@example.com>;expires=280297596632815",
                    "Content-Length: 0",
                ]
            ),
        )
    )
    out.append(
        (
            "bigcode",
            _msg(
                [
                    "SIP/2.0 4294967301 better not break the receiver",
                    via(),
                    f"From: <sip:a@{src}>;tag=5",
                    f"To: <{ruri}>;tag=6",
                    cid(),
                    "CSeq: 353494 INVITE",
                    "Content-Length: 0",
                ]
            ),
        )
    )
    # Broken syntax: unbalanced quotes, <> around the Request-URI, spaces in it, bad version.
    out.append(
        (
            "quotbal",
            _msg(
                [
                    f"INVITE {ruri} SIP/2.0",
                    via(),
                    "Max-Forwards: 70",
                    f'From: "Mr. J. User <sip:a@{src}>;tag=7',
                    f"To: <{ruri}>",
                    cid(),
                    "CSeq: 1 INVITE",
                    "Content-Length: 0",
                ]
            ),
        )
    )
    out.append(
        (
            "ltgtruri",
            _msg([f"INVITE <{ruri}> SIP/2.0", *base, cid(), "CSeq: 1 INVITE", "Content-Length: 0"]),
        )
    )
    out.append(
        (
            "lwsruri",
            _msg(
                [
                    f"INVITE sip:user@{dst}; lr SIP/2.0",
                    *base,
                    cid(),
                    "CSeq: 1 INVITE",
                    "Content-Length: 0",
                ]
            ),
        )
    )
    out.append(
        (
            "badvers",
            _msg([f"OPTIONS {ruri} SIP/7.0", *base, cid(), "CSeq: 1 OPTIONS", "Content-Length: 0"]),
        )
    )
    out.append(
        (
            "mismatch01",
            _msg([f"OPTIONS {ruri} SIP/2.0", *base, cid(), "CSeq: 1 INVITE", "Content-Length: 0"]),
        )
    )
    out.append(
        (
            "unksm",
            _msg(
                [
                    "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0",
                    *base,
                    cid(),
                    "CSeq: 1 OPTIONS",
                    "Content-Length: 0",
                ]
            ),
        )
    )
    out.append(
        (
            "zeromf",
            _msg(
                [
                    f"OPTIONS {ruri} SIP/2.0",
                    via(),
                    "Max-Forwards: 0",
                    f"From: <sip:a@{src}>;tag=8",
                    f"To: <{ruri}>",
                    cid(),
                    "CSeq: 1 OPTIONS",
                    "Content-Length: 0",
                ]
            ),
        )
    )
    # Missing mandatory headers, an unknown Require, an unknown body type, a bad multipart.
    out.append(
        ("nocallid", _msg([f"INVITE {ruri} SIP/2.0", *base, "CSeq: 1 INVITE", "Content-Length: 0"]))
    )
    out.append(
        (
            "bext01",
            _msg(
                [
                    f"INVITE {ruri} SIP/2.0",
                    *base,
                    cid(),
                    "CSeq: 1 INVITE",
                    "Require: nothingSupportsThis, nothingSupportsThisEither",
                    "Content-Type: application/sdp",
                    f"Content-Length: {len(sdp)}",
                ],
                sdp,
            ),
        )
    )
    out.append(
        (
            "invut",
            _msg(
                [
                    f"INVITE {ruri} SIP/2.0",
                    *base,
                    cid(),
                    "CSeq: 1 INVITE",
                    "Content-Type: application/unknownformat",
                    "Content-Length: 40",
                ],
                '<audio> <pcmu port="443"/> </audio>\r\n\r\n',
            ),
        )
    )
    mp = (
        "--boundary\r\nContent-Type: application/sdp\r\n\r\n"
        + sdp
        + "--boundary\r\nContent-Type: application/pkcs7-mime\r\n\r\n\x00\x01\x02\xff\r\n"
    )
    out.append(
        (
            "mpart01",
            _msg(
                [
                    f"INVITE {ruri} SIP/2.0",
                    *base,
                    cid(),
                    "CSeq: 1 INVITE",
                    'Content-Type: multipart/mixed;boundary="boundary"',
                    f"Content-Length: {len(mp)}",
                ],
                mp,
            ),
        )
    )
    out.append(
        (
            "badsdp",
            _msg(
                [
                    f"INVITE {ruri} SIP/2.0",
                    *base,
                    cid(),
                    "CSeq: 1 INVITE",
                    "Content-Type: application/sdp",
                    "Content-Length: 60",
                ],
                "v=9\r\nm=audio 99999999 RTP/AVP 0\r\nc=IN IP4 300.1.1.1\r\na=\r\n",
            ),
        )
    )
    # Requests for dialogs and transactions that do not exist.
    for method in ("BYE", "CANCEL", "ACK", "PRACK", "UPDATE", "INFO", "NOTIFY", "REFER"):
        out.append(
            (
                f"stray-{method}",
                _msg(
                    [
                        f"{method} {ruri} SIP/2.0",
                        via(),
                        "Max-Forwards: 70",
                        f"From: <sip:a@{src}>;tag=9",
                        f"To: <{ruri}>;tag=nonexistent",
                        cid(),
                        f"CSeq: 2 {method}",
                        "Refer-To: <sip:+919999999999@example.com>",
                        "Event: refer",
                        "Content-Length: 0",
                    ]
                ),
            )
        )
    # Binary junk: NUL bytes, a lone header block, non-UTF-8, nothing but CRLFs, truncation.
    out.append(
        (
            "nul-in-header",
            _msg(
                [
                    f"OPTIONS {ruri} SIP/2.0",
                    via(),
                    "Max-Forwards: 70",
                    f"From: <sip:a\x00b@{src}>;tag=10",
                    f"To: <{ruri}>",
                    cid(),
                    "CSeq: 1 OPTIONS",
                    "Content-Length: 0",
                ]
            ),
        )
    )
    out.append(("latin1", b"OPTIONS " + ruri.encode() + b" SIP/2.0\r\nFrom: \xff\xfe\xe9\r\n\r\n"))
    out.append(("crlfs", b"\r\n" * 700))
    out.append(("truncated", _msg([f"INVITE {ruri} SIP/2.0", *base])[:90]))
    out.append(("random", uuid.uuid4().bytes * 40))
    return out
