"""Just enough .torrent handling for the seeding benchmark (stdlib only).

The benchmark gives every seeder a tracker of its own, so each client gets a copy of the one
torrent with its own announce URL. The info dictionary is kept byte for byte, so every copy has
the same info-hash (BEP 3) and every client seeds the same swarm content.
"""
import hashlib


class BencodeError(ValueError):
    """Malformed bencoded data."""


def bdecode(data, i=0):
    """Decode one bencoded value of data starting at i; returns (value, index after it).

    Byte strings stay bytes, dictionary keys too. Truncated or malformed input raises
    BencodeError rather than IndexError or a partial result.
    """
    if i >= len(data):
        raise BencodeError("unexpected end at %d" % i)
    c = data[i:i + 1]
    if c == b"i":
        j = data.find(b"e", i)
        if j < 0:
            raise BencodeError("unterminated integer at %d" % i)
        try:
            return int(data[i + 1:j]), j + 1
        except ValueError:
            raise BencodeError("bad integer at %d" % i) from None
    if c in (b"l", b"d"):
        i += 1
        items = []
        while data[i:i + 1] != b"e":
            if i >= len(data):
                raise BencodeError("unterminated %s" % ("list" if c == b"l" else "dict"))
            v, i = bdecode(data, i)
            items.append(v)
        if c == b"l":
            return items, i + 1
        if len(items) % 2:
            raise BencodeError("dictionary key without a value")
        keys = items[0::2]
        if not all(isinstance(k, bytes) for k in keys):
            raise BencodeError("dictionary key that is not a string")
        return dict(zip(keys, items[1::2])), i + 1
    j = data.find(b":", i)
    if j < 0 or not data[i:j].isdigit():
        raise BencodeError("bad string length at %d" % i)
    end = j + 1 + int(data[i:j])
    if end > len(data):
        raise BencodeError("string at %d runs past the end" % i)
    return data[j + 1:end], end


def bencode(x):
    """Encode ints, bytes/str, lists and dicts (keys sorted as bytes)."""
    if isinstance(x, bool):
        raise TypeError("bool is not bencodable")
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, (bytes, bytearray)):
        return b"%d:%s" % (len(x), bytes(x))
    if isinstance(x, list):
        return b"l" + b"".join(bencode(v) for v in x) + b"e"
    if isinstance(x, dict):
        keys = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in x.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in keys) + b"e"
    raise TypeError("cannot bencode %s" % type(x).__name__)


def _top(data):
    """The top-level dictionary and the byte span of its info value."""
    if data[:1] != b"d":
        raise BencodeError("a torrent is a dictionary")
    top, end = bdecode(data)
    if end != len(data):
        raise BencodeError("%d bytes after the torrent" % (len(data) - end))
    # Walk the keys again to find the raw span of info: re-encoding could change its bytes.
    i = 1
    while data[i:i + 1] != b"e":
        k, i = bdecode(data, i)
        start = i
        _, i = bdecode(data, i)
        if k == b"info":
            if not isinstance(top[b"info"], dict):
                raise BencodeError("info is not a dictionary")
            return top, (start, i)
    raise BencodeError("no info dictionary")


def info_hash(data):
    """Hex SHA-1 of the info dictionary exactly as stored (the v1 info-hash)."""
    _, (s, e) = _top(data)
    return hashlib.sha1(data[s:e]).hexdigest()


def retrack(data, url):
    """A copy of the torrent whose only tracker is url; the info bytes are untouched."""
    top, (s, e) = _top(data)
    top.pop(b"announce-list", None)
    top[b"announce"] = url.encode()
    out = [b"d"]
    for k in sorted(top):
        out.append(bencode(k))
        out.append(data[s:e] if k == b"info" else bencode(top[k]))
    out.append(b"e")
    return b"".join(out)


def single_file(data):
    """(name, length) of a single-file torrent; ValueError for a multi-file one."""
    top, _ = _top(data)
    info = top[b"info"]
    if b"length" not in info or b"files" in info:
        raise ValueError("not a single-file torrent")
    return info[b"name"].decode(), info[b"length"]
