"""GraphQL for photos: the Photo node and the upload mutations."""
