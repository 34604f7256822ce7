"""Objects in one OpenStack Swift container, spoken to with python-swiftclient.

Every blobsvc path is one Swift object of the same name in the configured
container (created at start-up when missing). What differs from the other
drivers, and why:

* **Uploads stream.** A PUT body goes to Swift with chunked transfer encoding,
  straight from the client: no temporary file, no whole object in memory.
  The last chunk is held back until the upload's length and checksum checks
  and the write precondition have passed, so Swift never receives the end
  of a wrong body and never commits it.
* **Large objects are Static Large Objects (SLO).** An upload whose size is
  known and at most ``segment_size``, or unknown but ending within the first
  MiB, is one plain object: its ETag is the plain MD5, as with the other
  drivers. Any other upload is stored as segments of at most
  ``segment_size`` bytes, then a manifest under the object's name. Its
  ETag is still the MD5 of its bytes, kept in the manifest's content type
  (see :mod:`.objectmeta`), not Swift's MD5 of the segments' MD5s.
  ``cat`` results are SLOs too, unless every chunk is under 1 MiB, with
  S3's composite ETag of the chunks.
* **Segment layout.** Segments live in the same container under the
  reserved prefix: ``.blobsvc/segments/<object path>/<upload id>/<index>``
  (a digest replaces the path when the name would exceed Swift's 1024
  bytes). A manifest owns its segments: deleting or overwriting the object
  deletes them (an overwritten or deleted manifest is first copied to a
  tombstone under ``.blobsvc/replaced/...``, deleted with its segments
  ``segment_grace_seconds`` after the new version won, by a sweeper thread,
  or at ``close()`` whatever its age). ``move`` copies only the manifest, so
  segments are shared, never re-uploaded. Listings never show ``.blobsvc``.
  A reader still streaming the old version of a large object when it is
  overwritten or deleted reads it whole if it finishes within the grace
  period (plain objects stream on). Overlapping writes of one name can each
  tombstone the version before both, so the loser's segments would be
  tombstoned by nobody: each large version this process commits is checked
  after the grace period (or at ``close()``), and its segments go if no
  manifest a move or cat recorded (``lending``) and no manifest or
  tombstone in the container listing lists them, twice, since listings
  lag. What a killed process leaves (segments of writes in flight,
  pending tombstones) any instance collects (``journal``, ``collector``).
* **cat copies inside Swift where it pays.** Chunks of 1 MiB or more are
  copied by Swift into segments of the result (a large chunk lends its
  segments); runs of smaller ones are read through blobsvc and joined into
  one segment, because Swift throttles reading SLOs made of many segments
  under 1 MiB (its ``rate_limit_under_size``). A result made only of small
  chunks (at most ``segment_size`` in all) is a plain object, with a plain
  MD5 ETag.
* **Directory/object clashes are checked, best effort.** Swift has no
  directories, so the contract's rules (no object below an object, no object
  named like a directory, no delete of a non-empty directory) are enforced
  right before a write commits, from the HEAD that also judges its
  precondition: a live object there means, by the rules, that its parents
  are directories and it is none, so an overwrite costs no listing. A new
  name costs a one-entry listing or two, and a HEAD per parent level that
  holds nothing yet. Writes in flight in this process claim their names.
  A clash is found after the body was sent (a large upload's segments are
  then deleted). Two blobsvc instances writing clashing names at the same
  moment can still both succeed, and a name that such a race left both an
  object and a directory takes overwrites.
* **Concurrency is Swift's.** Swift orders the versions of an object by the
  time each PUT *started*, so a long upload can lose to a shorter one that
  started later. Write preconditions (of a PUT, and of a move's or cat's
  destination) are checked with a HEAD right before the commit
  (check-then-write: a write of the same name, from this process or
  another, can come in between). ``move`` is copy-then-delete: for a
  moment both names exist. A small PUT that Swift answers ``202`` (it
  already held a newer version) returns that newer version's info, and
  its own MD5 stays unknown (Swift computes it and reports none then).
* **Metadata is Swift's.** User metadata is ``X-Object-Meta-<name>``, the
  stored headers are Swift headers of the same names, the expiry is Swift's
  ``X-Delete-At`` plus a content-type parameter ``;blobsvc-expires-at=<n>``
  that carries it into listings (which show neither metadata nor
  ``X-Delete-At``), stripped wherever a content type is read; so an expired
  object leaves listings at once, without a HEAD per entry (Swift answers
  404 for it from its ``X-Delete-At`` on, and its object-expirer reclaims
  the space within its interval; ``reap_expired`` has nothing to do).
  Values go as UTF-8, with ``%`` and edge whitespace escaped (see
  ``objectmeta``). Swift's constraints on metadata are read from ``/info``
  and enforced before a byte is uploaded (see ``constraints`` for the
  ones an operator raises). Listings show a content type's parameters as
  Swift's container server rewrites them (no spaces around ``;``).
* **Segments expire with their object.** Swift's expirer deletes a
  manifest, never its segments; so each segment (and nested manifest)
  carries its own ``X-Delete-At``, ``segment_grace_seconds`` (rounded up)
  after the object's. A move keeps both. A copy makes segments of its own
  (each copied by Swift) with the copy's expiry. A POST changing a large
  object's expiry, and a cat whose result borrows a large chunk's segments,
  change theirs by one rule: widen to the later of the old and new expiry
  before the commit, narrow to the new one after it (back to the old one if
  the commit failed); a segment never expires before a manifest listing it.
* **ctime** is Swift's Last-Modified: whole seconds (a POST moves it).
* **Failures.** A Swift that does not answer (refused, timed out, 5xx after
  the configured retries, credentials refused) raises
  ``BackendUnavailable``; the longest wait is about ``(retries + 1) *
  timeout`` plus the backoffs. Swift's 507 raises ``InsufficientStorage``.

The modules, one job each, in the order a request meets them:

==================  ===========================================================
``driver``          SwiftDriver: the contract's hooks, wiring the parts below
``settings``        SwiftSettings: every setting, its default and its range
``connections``     per-thread and per-stream connections, one auth for all
``client``          one container's small requests, errors translated
``errors``          swiftclient's failures as storage errors, one log line each
``claims``          object/directory clash rules: in-process claims, checks
``listing``         listing pages (a level, or recursive) from Swift's
``reads``           streamed GETs, each on a connection of its own
``bodies``          PUT bodies that hold back their end; cutting segments
``upload``          plain and SLO uploads: segments, manifests, clean-up
``cat``             cat planning, lent and copied segments, the size budget
``moves``           move (manifest copy) and delete
``copies``          server-side copies; a large source's segments copied one by one
``updates``         update_object: a POST of new metadata
``expiry``          segments' expiry: widen, commit, narrow
``constraints``     the cluster's metadata limits, from /info, checked first
``objectmeta``      metadata, stored headers and expiry as Swift headers
``retire``          tombstones and the sweeper that deletes segments late
``journal``         notes of large writes in flight, kept in Swift
``collector``       settles what writes and replacements of a dead process left
``lending``         records of where moves and cats took an upload's segments
``references``      which uploads the container's manifests still list
``layout``          where private objects live; SLO query strings and ETag
``headers``         what Swift's answers say about an object
==================  ===========================================================
"""

from blobsvc.storage.swift.driver import SwiftDriver
from blobsvc.storage.swift.errors import from_client_exception as _from_client_exception
from blobsvc.storage.swift.layout import slo_etag as _slo_etag
from blobsvc.storage.swift.reads import CHUNK_SIZE
from blobsvc.storage.swift.settings import SwiftSettings

__all__ = ["CHUNK_SIZE", "SwiftDriver", "SwiftSettings"]

# The two helpers tests imported, under their names from when the driver
# was a single module.
__all__ += ["_from_client_exception", "_slo_etag"]
