"""The tenant rule on its own: which keys and buckets a user's job may read and write."""

from __future__ import annotations

import uuid

import pytest

from worker.storage.tenancy import OutsideTenant, Tenancy

OWNER = uuid.UUID("6f1c2a9e-3b7d-4c55-9e0a-1d2b3c4d5e6f")
U = str(OWNER)
OTHER = "0b0b0b0b-0000-4000-8000-000000000000"


def user(*read_buckets: str) -> Tenancy:
    return Tenancy.for_job(OWNER, "videos", read_buckets)


@pytest.mark.parametrize(
    "key",
    [
        f"{U}/a.mp4",
        f"{U}/deep/er/a.mp4",
        f"{U}/{U}/a.mp4",
        f"{U}/..a.mp4",  # a name that starts with dots is just a name
    ],
)
def test_the_owner_writes_and_reads_inside_their_folder(key):
    assert user().write_problem(key) is None
    assert user().read_problem("videos", key) is None


@pytest.mark.parametrize(
    "key",
    [
        f"{OTHER}/a.mp4",  # another user's folder
        f"{U}x/a.mp4",  # the owner's id as a prefix of another folder's name
        f"{U}.mp4",  # beside the folder
        U,  # the folder itself, not an object in it
        U.upper() + "/a.mp4",  # another spelling of the same uuid
        U.replace("-", "") + "/a.mp4",  # the uuid without hyphens
        f"{{{U}}}/a.mp4",  # the uuid in braces
        f"x/{U}/a.mp4",  # the owner's folder, but not first
        f"anonymous/{U}.mp4",  # the default key of a row without user_id
        f"{U}%2Fa.mp4",  # a slash percent-encoded
        f"{U}/%2E%2E/{OTHER}/a.mp4",  # '..' percent-encoded, decoded by supabase-py
        f"{U}/a%2Fb.mp4",
        "%36" + U[1:] + "/a.mp4",  # the first character of the uuid percent-encoded
    ],
)
def test_keys_outside_the_folder_are_refused(key):
    assert user().write_problem(key)
    assert user().read_problem("videos", key)
    with pytest.raises(OutsideTenant, match="is not allowed"):
        user().check_write(key)


def test_write_problem_says_what_is_allowed():
    problem = user().write_problem(f"{OTHER}/a.mp4")
    assert problem == f'a user\'s job stores objects only under "{U}/", like "{U}/video.mp4"'


def test_reads_are_limited_to_the_output_bucket_by_default():
    problem = user().read_problem("uploads", f"{U}/a.mp4")
    assert problem == (
        'the bucket "uploads" is not allowed: a user\'s job reads storage:// objects only '
        f'under "{U}/" in the bucket "videos"'
    )


def test_buckets_the_operator_allows_can_be_read_but_only_in_the_folder():
    rule = user("uploads", "videos")
    assert rule.read_buckets == ("videos", "uploads")
    assert rule.read_problem("uploads", f"{U}/a.mp4") is None
    problem = rule.read_problem("uploads", f"{OTHER}/a.mp4")
    assert problem == (
        f"storage://uploads/{OTHER}/a.mp4 is not allowed: a user's job reads storage:// "
        f'objects only under "{U}/" in the buckets "videos" or "uploads"'
    )
    assert rule.read_problem("Uploads", f"{U}/a.mp4")  # bucket names compare exactly


def test_a_row_without_user_id_keeps_its_freedom():
    trusted = Tenancy.for_job(None, "videos")
    for key in (f"{OTHER}/a.mp4", "anything/at/all.mp4", "a%2Fb.mp4"):
        assert trusted.write_problem(key) is None
        assert trusted.read_problem("any-bucket", key) is None
        trusted.check_write(key)


def test_the_owner_is_spelled_as_auth_uid_text():
    assert Tenancy.for_job(U.upper(), "videos").owner == U
    assert Tenancy.for_job(OWNER, "videos").folder == f"{U}/"
